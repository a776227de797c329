"""The domain of email engagement: everything below the HTTP routes and timers.

One package per capability, in layers (pyproject.toml, [tool.importlinter]); a package
imports only the ones below it, and none imports FastAPI, Starlette or azure.functions:

    ops            retention and erasure, the CLI, network-list refresh
    bootstrap      building a worker's services from settings
    milestones     side effects of sent / opened / replied (template counters, alerts)
    outlook        Graph: sending from the mailbox, sync, tracked activities, replies
    messages       compose, lifecycle, sending and dispatch, reading and listing
    assistant      alerts, first-open alerts, webhooks, reminders
    templates      rendering, statistics, the template library
    crm            contact/lead/account records, the follow rule, send-time advice
    engagement     KPIs, the fold cycle, labelling with the send time
    tracking       tokens, link rewriting, recording a hit, events and their codecs
    classification who made an event: the classifier, networks, devices, mail clients
    core           settings, errors, ids, vocabulary, storage, identity, Services, telemetry
"""
