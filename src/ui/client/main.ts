/**
 * The unit explorer's entry point: reads the page from the address
 * (/ui/, /ui/run?run=, /ui/layer?run=&layer=, /ui/unit?run=&layer=&unit=),
 * renders it, and refreshes it every REFRESH_MS without a reload.
 */
import "./style.css";
import { ApiFailure } from "./api.js";
import { h, pageHref } from "./dom.js";
import { layerPage, type Refresh, runPage, runsPage, unitPage } from "./pages.js";

const REFRESH_MS = 2000;

const app = document.getElementById("app")!;
const crumbs = document.getElementById("crumbs")!;
const live = document.getElementById("live")!;
let refresh: Refresh | undefined;
let generation = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function navigate(href: string): void {
  history.pushState(null, "", href);
  show();
}

function crumb(href: string, text: string): HTMLAnchorElement {
  const a = h("a", { href }, text);
  a.addEventListener("click", (e) => {
    e.preventDefault();
    navigate(href);
  });
  return a;
}

function show(): void {
  const page = location.pathname.slice(location.pathname.lastIndexOf("/") + 1);
  const q = new URLSearchParams(location.search);
  const run = q.get("run");
  const layer = q.get("layer");
  const unit = Number(q.get("unit"));
  const trail: Node[] = [crumb("./", "runs")];
  if (page === "run" && run !== null) {
    refresh = runPage(app, run, navigate);
    trail.push(document.createTextNode(run));
  } else if (page === "layer" && run !== null && layer !== null) {
    refresh = layerPage(app, run, layer, navigate);
    trail.push(crumb(pageHref("run", { run }), run), document.createTextNode(layer));
  } else if (page === "unit" && run !== null && layer !== null && Number.isInteger(unit) && unit >= 0) {
    refresh = unitPage(app, run, layer, unit, navigate);
    trail.push(
      crumb(pageHref("run", { run }), run),
      crumb(pageHref("layer", { run, layer }), layer),
      document.createTextNode(`unit ${unit}`),
    );
  } else {
    refresh = runsPage(app, navigate);
  }
  crumbs.replaceChildren(...trail.flatMap((n, i) => (i === 0 ? [n] : [document.createTextNode(" / "), n])));
  generation++;
  if (timer !== undefined) clearTimeout(timer);
  void tick(generation);
}

/** One refresh, then the next; a page left behind stops its loop. */
async function tick(gen: number): Promise<void> {
  try {
    await refresh?.();
    if (gen !== generation) return;
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    live.className = "live ok";
    document.body.dataset.refreshed = String(Date.now());
  } catch (err) {
    if (gen !== generation) return;
    const message = err instanceof ApiFailure ? `${err.code}: ${err.message}` : String(err);
    live.textContent = `not updated: ${message}`;
    live.className = "live stale";
    // A page whose run or layer went away says so in place of its content.
    if (err instanceof ApiFailure && err.status === 404) {
      app.replaceChildren(h("p", { class: "error", "data-testid": "error" }, message));
    }
  }
  if (gen === generation) timer = setTimeout(() => void tick(gen), REFRESH_MS);
}

window.addEventListener("popstate", show);
show();
