import { notBuiltYet } from "./placeholder.js";

export default notBuiltYet(
  "Assistant",
  "Action cards for first opens and fired reminders, high priority first, linking to the " +
    "message and its records, with snooze and dismiss; new cards appear live.",
);
