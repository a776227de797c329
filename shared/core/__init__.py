"""What every capability stands on: settings, errors, ids (and the index-key hash), one
vocabulary (event kinds and classes, the counted set), the text rules of a mail header,
storage clients, seller identity (and where a seller's messages live, sellers.py), the
Services type, log levels and telemetry. Imports nothing else of shared."""
