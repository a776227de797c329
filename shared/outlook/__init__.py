"""Outlook through Microsoft Graph: the client (credential, endpoint, mailbox-wide request
limit), mail calls and item parsing, sending from the seller's mailbox, enrolled mailboxes
and their health, the sync cycle, tracked activities, reply detection and the rules that
decide what is tracked. The Graph SDK is imported only here, lazily. May import messages
and below."""
