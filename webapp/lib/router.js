// History routing under /app: the server answers the shell for any /app/... path, so a deep
// link or a reload lands on the right page. (Not hash routing: Entra's sign-in answers in the
// URL's fragment.) Internal links are plain <a href="/app/..."> elements: one listener turns
// their clicks into navigations without a reload.
import { useEffect, useState } from "preact/hooks";

const EVENT = "app:navigate";
let moves = 0;
addEventListener("popstate", () => moves++);

export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  moves++;
  dispatchEvent(new Event(EVENT));
}

/** Whether the seller has moved since the app loaded (a fresh load leaves focus alone). */
export function hasNavigated() {
  return moves > 0;
}

/** The current path and query, re-rendering on every navigation. */
export function useLocation() {
  const read = () => ({ path: location.pathname, query: new URLSearchParams(location.search) });
  const [where, setWhere] = useState(read);
  useEffect(() => {
    const update = () => setWhere(read());
    addEventListener("popstate", update);
    addEventListener(EVENT, update);
    return () => {
      removeEventListener("popstate", update);
      removeEventListener(EVENT, update);
    };
  }, []);
  return where;
}

/** The route whose pattern ("/app/messages/:id") matches `path`, with its parameters. */
export function match(routes, path) {
  const trimmed = path.length > 4 ? path.replace(/\/+$/, "") : path;
  for (const route of routes) {
    const names = [];
    const pattern = route.path.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    });
    const found = new RegExp(`^${pattern}$`).exec(trimmed);
    if (found) {
      const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(found[i + 1])]));
      return { route, params };
    }
  }
  return null;
}

/** Same-origin links under /app navigate in place (new-tab clicks, downloads and links
 * within the page, such as "Skip to content", excepted). */
export function interceptLinks(root = document) {
  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest?.("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || !/^\/app(\/|$)/.test(url.pathname)) return;
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    event.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
}
