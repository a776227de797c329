"""What tells the seller to act: alerts (list, snooze, dismiss), first-open alerts within
seconds, webhooks pushing alerts out, and follow-up reminders. May import templates and
below."""
