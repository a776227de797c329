// The one way the pages call the JSON API: the bearer token from sessionStorage, the API's
// error shape {"error": {"field", "message", "details"}} (functions/errors.py) turned into an
// ApiError and shown in the shell's alert region, and a 401 sending the seller to sign in.

const TOKEN_KEY = "engagement.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, field, message, details = []) {
    super(message);
    this.status = status;
    this.field = field;
    this.details = details;
  }
}

const listeners = new Set();

/** Listen for errors to show; returns the function that stops listening. */
export function onError(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Show an error in the shell's alert region (null clears it). */
export function reportError(error) {
  for (const listener of listeners) listener(error);
}

// What a 401 does: set by the shell (auth.js tries a silent renewal, else signs in again).
let unauthorized = async () => null;
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/**
 * Call the API: `query` becomes the query string (empty values left out), `body` JSON.
 * Answers the parsed JSON (null for 204); throws ApiError, shown in the alert region unless
 * `quiet` (the caller shows it itself).
 */
export async function api(path, { method = "GET", query, body, quiet = false, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const send = async () => {
    const headers = { Accept: "application/json" };
    const bearer = token.get();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  };
  let response;
  try {
    response = await send();
    if (response.status === 401 && (await unauthorized())) response = await send();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return fail(new ApiError(0, "network", "The server could not be reached. Check the connection and try again."), quiet);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const shape = data?.error ?? {};
  const error = new ApiError(
    response.status,
    shape.field ?? "",
    shape.message ?? `The server answered ${response.status}.`,
    shape.details ?? [],
  );
  if (response.status === 401) {
    token.clear();
    dispatchEvent(new Event("app:signed-out"));
    throw error;
  }
  return fail(error, quiet);
}

function fail(error, quiet) {
  if (!quiet) reportError(error);
  throw error;
}
