"""E-mail templates: sandboxed rendering, statistics (open and reply rates, Wilson lower
bound, recommended), the library (create, list, update, archive), the per-template counters
that milestones mark, and what the template routes answer (public.py). May import crm and
below."""
