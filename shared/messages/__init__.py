"""The seller's followed email: input models, compose (idempotent, ordered writes),
lifecycle (send, reschedule, cancel, reminders), reading and listing, and sending exactly
once: the state machine with leases, the dispatch queue, delivery backends and the sent-mail
index replies are matched against. May import assistant and below."""
