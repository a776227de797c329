"""What the recorded events mean: KPIs (pure: opens, clicks, attachment views, replies, the
timeline), labelling events again with the send time, the fold cycle that merges closed
buckets into each message's KPIs, and the live read of events not folded yet. Side effects
of reaching a milestone go through Services.milestones. May import tracking and below."""
