import { notBuiltYet } from "./placeholder.js";

export default notBuiltYet(
  "Compose",
  "To, Cc and Bcc with each recipient's follow preference as it is typed, Follow / Don't Follow " +
    "and Retry Follow, a template picker, followed attachments, Send now, Save draft and Send later " +
    "with the send-time advice, and a follow-up reminder; drafts reopened, edited and deleted.",
);
