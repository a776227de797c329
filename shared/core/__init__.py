"""What every capability stands on: settings, errors, ids (and the index-key hash), one
vocabulary (event kinds and classes, the counted set), the text rules of a mail header,
storage clients, seller identity, the Services type and telemetry. Imports nothing else of
shared."""
