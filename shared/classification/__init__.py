"""Who made a tracking event: the pure two-stage classifier (a person, a scanner, a privacy
proxy, or no telling), the published networks it looks addresses up in (and their refresh
from vendors' feeds), device types and mail clients from user agents. May import core."""
