"""E-mail templates: sandboxed rendering, statistics (open and reply rates, Wilson lower
bound, recommended), the library (create, list, update, archive) and the per-template
counters that milestones mark. May import crm and below."""
