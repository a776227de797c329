import { notBuiltYet } from "./placeholder.js";

export default notBuiltYet(
  "Admin",
  "The engagement switch, and the mailbox health dashboard: last sync, lag, items tracked, " +
    "failing, undeliverable and errors by class over time.",
);
