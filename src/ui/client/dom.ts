/** Small DOM helpers: elements built with textContent only, so names from the API are never parsed as HTML. */

type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A rate or probability: 0, plain decimals down to 1e-3, scientific below. */
export function fmtRate(x: number): string {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return String(x);
  if (x >= 0.001) return x.toPrecision(3).replace(/\.?0+$/, "");
  return x.toExponential(2);
}

export function fmtPct(x: number): string {
  return `${(x * 100).toFixed(x < 0.001 && x > 0 ? 3 : 1)}%`;
}

export function fmtInt(x: number): string {
  return x.toLocaleString("en-US");
}

/** A link within the explorer: the page name plus query parameters, relative to /ui/. */
export function pageHref(page: string, params: Record<string, string | number> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  const s = q.toString();
  return `${page === "" ? "./" : page}${s === "" ? "" : `?${s}`}`;
}

export function stateLabel(state: string): string {
  return state.toLowerCase().replace("_", "-");
}
