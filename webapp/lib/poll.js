// Polling a JSON answer cheaply: each request names the ETag of the answer held
// (If-None-Match), and a 304 costs no body and no re-render. Errors (a 401 included) go
// through api() so they are handled as everywhere else.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, token } from "./api.js";

/**
 * `path` asked now and every `seconds` (not while the tab is hidden); `version` asks again
 * at once (after an action changed the answer). Answers {data, live, error}.
 */
export function usePoll(path, seconds, version = 0) {
  const [state, setState] = useState({ data: null, live: true, error: null });
  const tag = useRef(null);
  useEffect(() => {
    let stopped = false;
    const ask = async () => {
      if (stopped) return;
      try {
        const headers = { Accept: "application/json" };
        const bearer = token.get();
        if (bearer) headers.Authorization = `Bearer ${bearer}`;
        if (tag.current) headers["If-None-Match"] = tag.current;
        const response = await fetch(path, { headers, cache: "no-store" });
        if (stopped) return;
        if (response.status === 304) {
          setState((s) => (s.live ? s : { ...s, live: true }));
          return;
        }
        if (!response.ok) {
          tag.current = null;
          const data = await api(path); // the error shown (or a 401 handled) as api() does
          if (!stopped) setState({ data, live: true, error: null });
          return;
        }
        tag.current = response.headers.get("ETag");
        const data = await response.json();
        if (!stopped) setState({ data, live: true, error: null });
      } catch (error) {
        if (!stopped) setState((s) => ({ ...s, live: false, error }));
      }
    };
    ask();
    const timer = setInterval(() => !document.hidden && ask(), seconds * 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [path, seconds, version]);
  return state;
}
