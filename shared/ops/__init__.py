"""Running the service: retention and erasure (and the erasure report the API answers,
public.py), moving data keyed the old way to sellers' Entra ids (identities.py), and the
command line (one cycle now, dev tokens, enrolment, the migration). The top layer: may import
everything in shared."""
