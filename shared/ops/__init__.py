"""Running the service: retention and erasure (and the erasure report the API answers,
public.py), and the command line (one cycle now, dev tokens, enrolment). The top layer: may
import everything in shared."""
