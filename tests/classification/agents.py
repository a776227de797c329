"""Real user-agent strings and source networks the evaluation traces are built from.

Every user agent below was seen in public material (found with the project's search tool in
November 2026); the comment above each family names where. Version numbers are as found; the
traces are dated May 2024, when the human browsers here were current. Networks come from the
shipped data files (shared/data/networks) where the actor is a known vendor, and from
generated addresses elsewhere (people's homes and offices, clouds and relays the shipped
files do not list), so some actors are invisible to the network signal on purpose.
"""

from __future__ import annotations

# --- People: mail clients loading the pixel -------------------------------------------------

# Outlook for Windows. "Microsoft Office/16.0 (...; Microsoft Outlook 16.0.NNNNN; Pro)": this
# project's tests/classification/test_devices.py and public browser lists ("# Outlook desktop
# client"). The "ms-office; MSOffice 16" forms are Outlook's Word-based renderer loading
# images: a public httpagentparser example quotes the long one, and a public log review calls
# the short one "Outlook prefetching images in marketing emails".
OUTLOOK_DESKTOP = (
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; Win64; x64; Trident/7.0; .NET4.0C; "
    ".NET4.0E; .NET CLR 2.0.50727; .NET CLR 3.0.30729; .NET CLR 3.5.30729; wbx 1.0.0; "
    "Microsoft Outlook 16.0.4861; ms-office; MSOffice 16)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
)

# Outlook for iOS and Android. "Outlook-Android/2.0" is Microsoft's documented user agent
# (Exchange ActiveSync device access docs: "UserAgent Outlook-iOS/2.0 / Outlook-Android/2.0");
# the iOS web view string with "Outlook-iOS/4.2531.0" is from a public in-app-browser catalogue
# (its iOS version is later than the traces' date; nothing here reads it).
OUTLOOK_MOBILE = (
    "Outlook-Android/2.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Outlook-iOS/4.2531.0",
)

# Outlook for Mac names itself "Microsoft-MacOutlook/<version>": public mail archives carry it
# as the client's user agent ("user-agent: Microsoft-MacOutlook/16.70.23021201").
OUTLOOK_MAC = (
    "Microsoft-MacOutlook/16.70.23021201",
    "Microsoft-MacOutlook/16.78.23102103",
)

# Thunderbird 115 (2023-24), from public request logs ("GET /feeds/posts/ ... Thunderbird/115.6.1")
# and public client catalogues.
THUNDERBIRD = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
)

# Apple Mail on iOS with Mail Privacy Protection off: the system WebKit with no Safari token,
# as in this project's tests/classification/test_devices.py.
IOS_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
)

# Apple Mail on a Mac, and Apple's Mail Privacy Protection proxy: the same string, WebKit with
# no Safari token. Quoted as the MPP user agent in the issue this work comes from and in public
# tracking tests ("appleMpp: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15
# (KHTML, like Gecko)'", "Real user agents observed in the wild").
APPLE_MAIL_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
)

# --- People: browsers following a link (May 2024 versions) ----------------------------------

# Chrome/Edge/Firefox 124-125 and Safari 17.4.1, from public browser-header lists
# ("# Microsoft Edge 124 on Windows", "Safari iPhone", "Chrome ... Android").
BROWSERS_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_6) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
)
BROWSERS_MOBILE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
)
# A person on an old, unpatched machine: Chrome 100 was current in April 2022 (hard case);
# the string is in many public scraper headers.
BROWSERS_OUTDATED = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/100.0.4896.127 Safari/537.36",
)

# --- Privacy proxies ------------------------------------------------------------------------

# Gmail's image proxy: https://github.com/mssola/user_agent/issues/71 ("via ggpht.com
# GoogleImageProxy"), this project's tests, and public tracking tests quoting the full string.
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
)
# Yahoo's: the help page it names (https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html),
# quoted in public tracking tests and image-proxy code.
YAHOO_PROXY = (
    "Mozilla/5.0 (compatible; YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html)",
)
MPP = APPLE_MAIL_MAC
# HEY's image proxy names itself before a current Chrome on Linux: public mail-client readers
# match "hey.com/imageproxy" and quote this string ("hey's proxy wears chrome on linux").
HEY_PROXY = (
    "hey.com/imageproxy Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/134.0.0.0 Safari/537.36",
)
# Gmail's prefetch: when a recipient has Gmail open as the message arrives, Gmail fetches its
# images from a Google address with a legacy-Edge agent, before showing it (SparkPost/Bird,
# "Gmail is Prefetching Images", January 2022). The same string as GMAIL_SAMPLING below.
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0",
)

# --- Scanners -------------------------------------------------------------------------------

# Microsoft Safe Links / Defender detonation with browser-like agents:
# Chrome 57 on Windows 7 from 40.107.218.12 (https://github.com/gophish/gophish/issues/973);
# Chrome 79/80/96 on Windows 10 for Office 365 delivery-time clicks
# (https://github.com/gophish/gophish/issues/2446, https://github.com/mssola/user_agent/issues/71);
# Chrome 97 from 20.72.100.79, an Azure address
# (https://github.com/edalzell/laravel-passwordless-login/issues/79), where the same thread
# reports blank user agents from 104.47.x.x.
SAFE_LINKS_STALE = (
    "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/57.0.2987.133 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.136 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/80.0.3987.132 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.110 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/97.0.4692.99 Safari/537.36",
)
SAFE_LINKS_BLANK = ("",)
# Scanners that present a current browser (https://github.com/resend/resend-node/issues/901:
# a scanner click 12 s after delivery with "Windows NT 10.0 / Chrome 146", the recipient's own
# current version) - the hard case the user agent cannot settle.
SCANNER_CURRENT_BROWSER = BROWSERS_DESKTOP[:2]

# Barracuda: https://github.com/JayBizzle/Crawler-Detect/issues/552 ("Barracuda Sentinel (EE)"),
# also in Braze's documentation of filtered bot agents.
BARRACUDA = ("Barracuda Sentinel (EE)",)

# Office's link probe, sent when someone clicks a link in an Office app, before the browser
# opens: public bot lists and Varnish rules ("Microsoft Office Existence Discovery").
OFFICE_PROBE = ("Microsoft Office Existence Discovery",)

# Gmail's content sampling, a legacy-Edge agent: https://github.com/mssola/user_agent/issues/71
# and public bot-agent lists.
GMAIL_SAMPLING = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0",
)

# HTTP libraries and headless browsers: public bot lists ("python-requests/2.31.0",
# "curl/8.4.0", "Go-http-client/1.1", "okhttp/4.12.0"); HeadlessChrome 125 from 34.123.170.104
# (a Google Cloud address) in a public session-table dump.
HTTP_LIBRARIES = (
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/125.0.6422.60 Safari/537.36",
)
