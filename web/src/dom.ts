// A tiny element builder: h("td", { class: "num" }, "0.20 EUR/kWh"). Text is always set as text,
// never parsed as HTML, so values from the API cannot inject markup.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
}

/** A table with a caption, header cells and rows; cells marked numeric align right. */
export function table(caption: string, head: string[], rows: Child[][], options: { id?: string; numeric?: number[]; empty?: string } = {}): HTMLElement {
  const numeric = new Set(options.numeric ?? []);
  const t = h("table", { id: options.id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((x, i) => h("th", { scope: "col", class: numeric.has(i) ? "num" : null }, x)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", { class: "empty" }, h("td", { colspan: head.length }, options.empty ?? "Nothing yet"))
      : rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: numeric.has(i) ? "num" : null, "data-label": head[i] }, c))))),
  );
  // Wide tables turn into one card per row on a phone (the cells' data-label names each value).
  return h("div", { class: head.length > 4 ? "table-wrap stack" : "table-wrap" }, t);
}

/** A "not available" note for a part the node does not offer (yet). */
export function unavailable(what: string, why: string): HTMLElement {
  return h("p", { class: "unavailable", role: "note" }, h("strong", {}, `${what}: not available. `), why);
}
