// The app's pages: one line each. `nav` puts a page in the navigation bar (in this order),
// `admin` shows it to admins only, `open` needs no sign-in. A page module's default export is
// a component taking {params, query, me}.
export const routes = [
  { path: "/app", title: "Followed emails", nav: true, page: () => import("./pages/followed.js") },
  { path: "/app/messages/:id", title: "Message", page: () => import("./pages/message.js") },
  { path: "/app/compose", title: "Compose", nav: true, page: () => import("./pages/compose.js") },
  { path: "/app/assistant", title: "Assistant", nav: true, page: () => import("./pages/assistant.js") },
  { path: "/app/templates", title: "Templates", nav: true, page: () => import("./pages/templates.js") },
  { path: "/app/records", title: "Records", nav: true, page: () => import("./pages/records.js") },
  { path: "/app/records/:type/:id", title: "Record", page: () => import("./pages/records.js") },
  { path: "/app/admin", title: "Admin", nav: true, admin: true, page: () => import("./pages/admin.js") },
  { path: "/app/templates/:id", title: "Template", page: () => import("./pages/templates.js") },
  { path: "/app/signin", title: "Sign in", open: true, page: () => import("./pages/signin.js") },
  { path: "/app/drafts", title: "Drafts", page: () => import("./pages/drafts.js") },
];
