// Preact with htm: JSX-like templates in tagged strings, so the app needs no build step.
import { h, render, Fragment } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { render, Fragment };
