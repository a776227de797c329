"""Contacts, leads and accounts with their Follow Email preference; the follow rule (who may
be followed), and send-time advice (the pure model and the service that feeds it). May
import engagement and below."""
