"""What tells the seller to act: alerts (list, snooze, dismiss), first-open alerts within
seconds, webhooks pushing alerts out, follow-up reminders, and what the alert routes answer
(public.py). May import templates and below."""
