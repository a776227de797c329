"""Contacts, leads and accounts with their Follow Email preference; the follow rule (who may
be followed); send-time advice (the pure model and the service that feeds it); and what the
records, preferences and advice routes answer (public.py). May import engagement and
below."""
