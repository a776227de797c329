"""Microsoft Graph: the mailbox side of the service. Importing this package is cheap; the
msgraph SDK itself is imported by `shared.graph.client` only, which nothing on the HTTP
tracking path imports."""
