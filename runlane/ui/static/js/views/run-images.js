// Images per key, each with a slider over the steps it was logged at and the caption of that step.
import { api } from "../api.js";
import { BlobImage } from "../components/blob-image.js";
import { html, useState } from "../html.js";
import { useFetch } from "../hooks.js";
import { Empty, ErrorBox, Loading } from "../components/message.js";

function ImageKey({ name, images }) {
  const [index, setIndex] = useState(images.length - 1);
  const image = images[Math.min(index, images.length - 1)];
  return html`<section class="card image-card" data-key=${name}>
    <div class="card-head"><h3>${name}</h3><span class="muted">${images.length} ${images.length === 1 ? "image" : "images"}</span></div>
    <div class="image-frame"><${BlobImage} name=${image.blob} alt=${image.caption || `${name} at step ${image.step}`} width=${image.width} height=${image.height} /></div>
    <div class="image-meta">
      <span class="mono" data-field="step">step ${image.step}</span>
      <span class="caption" data-field="caption">${image.caption || ""}</span>
      <span class="muted">${image.width}×${image.height}</span>
    </div>
    ${images.length > 1
      ? html`<div class="image-slider">
          <button class="btn btn-sm" aria-label="previous image" disabled=${index === 0} onClick=${() => setIndex(index - 1)}>‹</button>
          <input type="range" min="0" max=${images.length - 1} value=${index} aria-label=${`${name} step`} onInput=${(e) => setIndex(Number(e.target.value))} />
          <button class="btn btn-sm" aria-label="next image" disabled=${index === images.length - 1} onClick=${() => setIndex(index + 1)}>›</button>
        </div>`
      : null}
  </section>`;
}

export function ImagesTab({ run }) {
  const { data, error, loading } = useFetch((signal) => api.images(run.id, null, { signal }), [run.id, run.status]);
  if (error) return html`<${ErrorBox} error=${error} what="the images" />`;
  if (loading && !data) return html`<${Loading} what="images" />`;
  const byKey = new Map();
  for (const image of data.items) {
    if (!byKey.has(image.key)) byKey.set(image.key, []);
    byKey.get(image.key).push(image);
  }
  if (byKey.size === 0) return html`<${Empty} title="No images">Log some with <code>run.log_image(key, image, step=..., caption=...)</code>.</${Empty}>`;
  return html`<div class="image-grid">${[...byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, images]) => html`<${ImageKey} key=${key} name=${key} images=${images} />`)}</div>`;
}
