import { notBuiltYet } from "./placeholder.js";

export default notBuiltYet(
  "Templates",
  "The template grid with open rate, reply rate, Recommended and email count; create and edit " +
    "with a rendered preview for a chosen record.",
);
