"""Reference data the fleet generator draws from: models, OS builds, names, apps, profiles."""

# iOS hardware: raw model (Cloud deviceModel), marketing name (Cloud prettyModel, Core model),
# UDID chip prefix, and the iOS versions the model can run in this fleet.
IOS_MODELS = (
    ("iPhone17,1", "iPhone 16 Pro", "00008140", ("18.2.1", "18.3.2", "18.4.1", "18.5")),
    ("iPhone17,3", "iPhone 16", "00008140", ("18.2.1", "18.3.2", "18.4.1", "18.5")),
    ("iPhone16,1", "iPhone 15 Pro", "00008130", ("17.6.1", "18.1.1", "18.3.2", "18.4.1", "18.5")),
    ("iPhone16,2", "iPhone 15 Pro Max", "00008130", ("17.6.1", "18.3.2", "18.4.1", "18.5")),
    ("iPhone15,4", "iPhone 15", "00008120", ("17.5.1", "17.6.1", "18.2.1", "18.4.1", "18.5")),
    ("iPhone15,2", "iPhone 14 Pro", "00008120", ("17.5.1", "17.6.1", "18.1.1", "18.3.2")),
    ("iPhone14,7", "iPhone 14", "00008110", ("16.7.10", "17.6.1", "18.2.1", "18.4.1")),
    ("iPhone14,5", "iPhone 13", "00008110", ("16.7.10", "17.5.1", "17.6.1", "18.3.2")),
    ("iPhone14,2", "iPhone 13 Pro", "00008110", ("16.7.10", "17.6.1", "18.1.1")),
    ("iPhone14,6", "iPhone SE (3rd generation)", "00008110", ("17.6.1", "18.2.1", "18.4.1")),
    ("iPhone13,2", "iPhone 12", "00008101", ("16.7.10", "17.5.1", "17.6.1")),
    ("iPad13,18", "iPad (10th generation)", "00008101", ("17.6.1", "18.3.2", "18.4.1")),
)
# Weights roughly follow a corporate fleet: recent Pro models dominate.
IOS_MODEL_WEIGHTS = (6, 5, 12, 6, 10, 9, 8, 9, 7, 4, 5, 3)

IOS_BUILDS = {
    "16.7.10": "20H350",
    "17.5.1": "21F90",
    "17.6.1": "21G93",
    "18.1.1": "22B91",
    "18.2.1": "22C161",
    "18.3.2": "22D82",
    "18.4.1": "22E252",
    "18.5": "22F76",
}

# Android hardware: manufacturer (as Build.MANUFACTURER reports it), Build.MODEL (Cloud
# deviceModel and Core model), marketing name (Cloud prettyModel), Android major versions.
ANDROID_MODELS = (
    ("Google", "Pixel 9 Pro", "Pixel 9 Pro", ("14", "15")),
    ("Google", "Pixel 8", "Pixel 8", ("14", "15")),
    ("Google", "Pixel 7a", "Pixel 7a", ("13", "14", "15")),
    ("samsung", "SM-S921B", "Galaxy S24", ("14", "15")),
    ("samsung", "SM-S911B", "Galaxy S23", ("13", "14", "15")),
    ("samsung", "SM-S901B", "Galaxy S22", ("12", "13", "14")),
    ("samsung", "SM-A546B", "Galaxy A54 5G", ("13", "14")),
    ("samsung", "SM-G991B", "Galaxy S21 5G", ("12", "13", "14")),
    ("samsung", "SM-X710", "Galaxy Tab S9", ("14",)),
    ("motorola", "moto g54 5G", "moto g54 5G", ("13", "14")),
)
ANDROID_MODEL_WEIGHTS = (5, 8, 6, 9, 10, 6, 8, 4, 2, 2)

# Android major version -> (build id, security patch level).
ANDROID_BUILDS = {
    "12": ("SP2A.220505.008", "2023-03-01"),
    "13": ("TQ3A.230901.001", "2024-02-01"),
    "14": ("AP2A.240905.003", "2024-09-05"),
    "15": ("AP4A.250205.002", "2025-02-05"),
}

# fmt: off
FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mateo", "Amelia", "Benjamin", "Harper", "Henry", "Evelyn", "Theodore", "Abigail",
    "Jack", "Emily", "Leo", "Ella", "Daniel", "Chloe", "Samuel", "Camila", "Owen", "Aria",
    "Sebastian", "Priya", "Arjun", "Mei", "Wei", "Yuki", "Hiro", "Fatima", "Omar", "Lena", "Jonas",
    "Chiara", "Luca", "Ines", "Hugo", "Sofia", "Mateus", "Nadia", "Tomasz", "Aisha", "Kwame",
    "Zara", "Ethan", "Grace", "Ryan", "Hannah", "Diego", "Lucia", "Anika", "Ravi", "Sara",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Nguyen", "Hill", "Flores", "Green", "Patel", "Kim", "Chen", "Wang", "Tanaka", "Sato",
    "Muller", "Schmidt", "Rossi", "Dubois", "Kowalski", "Novak", "Silva", "Santos", "Okafor",
    "Mensah", "Haddad", "Larsen", "Virtanen", "Murphy",
)
# fmt: on

# (department, share of users). Marketing users live in the Cloud "Marketing Space".
DEPARTMENTS = (
    ("Sales", 25),
    ("Engineering", 30),
    ("Marketing", 12),
    ("Finance", 10),
    ("Operations", 15),
    ("Legal", 5),
    ("Executives", 3),
)

# App catalogue: (platform, identifier, name, version, managed). Managed apps are pushed by the
# MDM; the last rows of each platform are the risky ones a threat console should notice.
APPS = (
    ("IOS", "com.mobileiron.anyware.ios", "Ivanti Mobile@Work", "12.11.0", True),
    ("IOS", "com.microsoft.Office.Outlook", "Microsoft Outlook", "4.2431.0", True),
    ("IOS", "com.microsoft.skype.teams", "Microsoft Teams", "6.21.1", True),
    ("IOS", "com.microsoft.Office.Word", "Microsoft Word", "2.89", True),
    ("IOS", "com.microsoft.Office.Excel", "Microsoft Excel", "2.89", True),
    ("IOS", "com.microsoft.msedge", "Microsoft Edge", "130.2849.80", True),
    ("IOS", "com.okta.mobile", "Okta Verify", "9.27.1", True),
    ("IOS", "com.cisco.secureclient", "Cisco Secure Client", "5.1.6", True),
    ("IOS", "com.salesforce.chatter", "Salesforce", "250.020", True),
    ("IOS", "com.google.chrome.ios", "Google Chrome", "131.0.6778.73", False),
    ("IOS", "com.tinyspeck.chatlyio", "Slack", "24.11.10", False),
    ("IOS", "net.whatsapp.WhatsApp", "WhatsApp Messenger", "24.22.79", False),
    ("IOS", "com.burbn.instagram", "Instagram", "354.0.0", False),
    ("IOS", "com.atebits.Tweetie2", "X", "10.67", False),
    ("IOS", "com.spotify.client", "Spotify", "8.9.96", False),
    ("IOS", "us.zoom.videomeetings", "Zoom Workplace", "6.2.10", False),
    ("IOS", "com.linkedin.LinkedIn", "LinkedIn", "9.30.2361", False),
    ("IOS", "com.getdropbox.Dropbox", "Dropbox", "391.2", False),
    ("IOS", "com.google.Maps", "Google Maps", "6.133.0", False),
    ("IOS", "com.ubercab.UberClient", "Uber", "3.636.10001", False),
    ("IOS", "com.netflix.Netflix", "Netflix", "16.46.0", False),
    ("IOS", "com.duolingo.DuolingoMobile", "Duolingo", "7.64.0", False),
    ("IOS", "ph.telegra.Telegraph", "Telegram Messenger", "11.3.1", False),
    ("IOS", "org.whispersystems.signal", "Signal", "7.33", False),
    ("IOS", "com.saurik.Cydia", "Cydia", "1.1.36", False),
    ("IOS", "com.opa334.TrollStore", "TrollStore", "2.0.12", False),
    ("IOS", "com.hotspot.vpn.free.master", "VPN Master - Free Proxy", "3.4.1", False),
    ("ANDROID", "com.forgepond.locksmith", "Ivanti Mobile@Work", "12.6.0.0.42R", True),
    ("ANDROID", "com.microsoft.office.outlook", "Microsoft Outlook", "4.2443.2", True),
    ("ANDROID", "com.microsoft.teams", "Microsoft Teams", "1416/1.0.0.2024203402", True),
    ("ANDROID", "com.microsoft.office.word", "Microsoft Word", "16.0.18129.20116", True),
    ("ANDROID", "com.okta.android.auth", "Okta Verify", "9.29.0", True),
    ("ANDROID", "com.cisco.anyconnect.vpn.android.avf", "Cisco Secure Client", "5.1.6.103", True),
    ("ANDROID", "com.salesforce.chatter", "Salesforce", "250.030", True),
    ("ANDROID", "com.android.chrome", "Chrome", "131.0.6778.81", False),
    ("ANDROID", "com.google.android.gm", "Gmail", "2024.11.03.693", False),
    ("ANDROID", "com.google.android.apps.maps", "Google Maps", "11.155.0101", False),
    ("ANDROID", "com.whatsapp", "WhatsApp", "2.24.23.78", False),
    ("ANDROID", "com.Slack", "Slack", "24.11.20.0", False),
    ("ANDROID", "com.instagram.android", "Instagram", "357.0.0.43.101", False),
    ("ANDROID", "com.spotify.music", "Spotify", "8.9.96.476", False),
    ("ANDROID", "us.zoom.videomeetings", "Zoom Workplace", "6.2.11.24928", False),
    ("ANDROID", "com.linkedin.android", "LinkedIn", "4.1.1005", False),
    ("ANDROID", "com.dropbox.android", "Dropbox", "391.2.2", False),
    ("ANDROID", "com.netflix.mediaclient", "Netflix", "8.140.1", False),
    ("ANDROID", "com.ubercab", "Uber", "4.549.10000", False),
    ("ANDROID", "org.telegram.messenger", "Telegram", "11.4.2", False),
    ("ANDROID", "org.thoughtcrime.securesms", "Signal", "7.24.2", False),
    ("ANDROID", "com.topjohnwu.magisk", "Magisk", "28.0", False),
    ("ANDROID", "eu.chainfire.supersu", "SuperSU", "2.82", False),
    (
        "ANDROID",
        "goldenshorestechnologies.brightestflashlight.free",
        "Brightest Flashlight Free",
        "2.4.2",
        False,
    ),
    ("ANDROID", "org.hola", "Hola VPN Proxy", "1.232.462", False),
)
# How many of the last catalogue rows per platform count as risky.
RISKY_APPS_PER_PLATFORM = {"IOS": 3, "ANDROID": 4}

# iOS configuration profiles: identifier, displayName, organization, managed, description.
# Managed ones are pushed by the MDM; the unmanaged ones were installed by users and are
# shared by several devices.
PROFILES = (
    ("mi.mdm.35010.0", "MDM Profile", "acme, Inc.", True, "Enrolls this device with Ivanti EPMM."),
    (
        "mi.webclip.35016.0",
        "Apple App Catalog",
        "acme, Inc.",
        True,
        "Access the Apple App Catalog via this Web Clip.",
    ),
    (
        "mi.credentialidentitydg.35018.0",
        "Identity for the App Catalog",
        "acme, Inc.",
        True,
        "The Identity used by this device to access the Apple App Catalog securely.",
    ),
    ("mi.wifi.35020.0", "ACME-Corp Wi-Fi", "acme, Inc.", True, "Corporate Wi-Fi (802.1X)."),
    ("mi.exchange.35022.0", "ACME Exchange", "acme, Inc.", True, "Corporate mail and calendar."),
    ("mi.vpn.35024.0", "ACME Per-App VPN", "acme, Inc.", True, "Per-app VPN for managed apps."),
    ("mi.passcode.35026.0", "Passcode Policy", "acme, Inc.", True, "Requires a 6-digit passcode."),
    ("mi.restrictions.35028.0", "Restrictions", "acme, Inc.", True, "Device restrictions."),
    (
        "com.xk72.charles.cert",
        "Charles Proxy CA Certificate",
        "XK72 Ltd",
        False,
        "Charles Proxy custom root certificate.",
    ),
    (
        "com.apple.seed.beta",
        "iOS Beta Software Profile",
        "Apple Inc.",
        False,
        "Enables iOS beta software updates.",
    ),
    ("io.nextdns.profile", "NextDNS", "NextDNS", False, "Encrypted DNS configuration."),
    (
        "com.freevpnproxy.config",
        "Free VPN Proxy",
        "Free VPN Proxy LLC",
        False,
        "VPN configuration installed by a free VPN app.",
    ),
    ("profile.home.wifi", "Home Wi-Fi", "", False, "Wi-Fi settings."),
)

CORE_VSP_VERSION = "VSP 11.8.0.0 Build 12 "
