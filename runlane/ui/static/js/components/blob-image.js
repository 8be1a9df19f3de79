// An image from the store. Without an API key the browser loads (and caches) the blob URL itself; with
// one, an <img src> cannot send the Authorization header, so the bytes are fetched and shown from memory.
import { api, auth, blobUrl } from "../api.js";
import { html, useEffect, useState } from "../html.js";

export function useBlobUrl(name) {
  const keyed = Boolean(auth.key());
  const [url, setUrl] = useState(keyed ? null : blobUrl(name));
  useEffect(() => {
    if (!keyed) {
      setUrl(blobUrl(name));
      return undefined;
    }
    const controller = new AbortController();
    let made = null;
    api.blob(name, { signal: controller.signal }).then(
      (blob) => {
        made = URL.createObjectURL(blob);
        setUrl(made);
      },
      () => {},
    );
    return () => {
      controller.abort();
      if (made) URL.revokeObjectURL(made);
    };
  }, [name, keyed]);
  return url;
}

export function BlobImage({ name, ...rest }) {
  const url = useBlobUrl(name);
  return url ? html`<img src=${url} ...${rest} />` : html`<span class="spinner"></span>`;
}
