// Forms: a labelled field that shows the API's error for it beside it, and the API's error
// answer ({"error": {"field", "message", "details"}}, every refused field in `details`) turned
// into a message per field, so a form can show each next to its control.
import { html } from "./html.js";
import { reportError } from "./api.js";

/**
 * {field: message} for the fields of `known` that `error` (an ApiError) names; an error that
 * names no field of the form goes to the shell's alert region instead.
 */
export function fieldErrors(error, known) {
  const found = {};
  for (const { field, message } of [{ field: error.field, message: error.message }, ...(error.details ?? [])]) {
    const name = known.find((k) => field === k || field?.startsWith(`${k}.`) || field?.startsWith(`${k}[`));
    if (name && !found[name]) found[name] = message;
  }
  if (!Object.keys(found).length) reportError(error);
  return found;
}

/**
 * A labelled control with its error below it (aria-invalid and aria-describedby point at it).
 * `control({id, invalid, describedBy})` renders the input itself.
 */
export function Field({ id, label, error, hint, control }) {
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [error && errorId, hintId].filter(Boolean).join(" ") || undefined;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${hint && html`<p id=${hintId} class="muted small hint">${hint}</p>`}
    ${control({ id, invalid: error ? "true" : "false", describedBy })}
    ${error && html`<p id=${errorId} class="field-error">${error}</p>`}
  </div>`;
}
