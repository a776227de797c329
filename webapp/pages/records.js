import { notBuiltYet } from "./placeholder.js";

export default notBuiltYet(
  "Records",
  "Search contacts, leads and accounts; a record's page with its Follow Email switch and its " +
    "timeline of followed messages and tracked Outlook items.",
);
