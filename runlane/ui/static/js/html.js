// One place that binds htm to Preact, so every component writes html`<div>...</div>`.
import { h, render, Fragment } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, Fragment };
export { useState, useEffect, useRef, useMemo, useCallback, useLayoutEffect } from "preact/hooks";
