"""Reader for SisFall-format folders: manifest.csv + SUBJECT/*.csv.gz in milli-g at 50 Hz."""
import csv
import gzip
import os

RATE_HZ = 50
MANIFEST_FIELDS = ("file", "kind", "activity", "subject", "trial", "samples")


class DatasetError(Exception):
    pass


class Recording:
    __slots__ = ("root", "file", "kind", "activity", "subject", "trial", "samples")

    def __init__(self, root, row):
        self.root = root
        self.file = row["file"]
        self.kind = row["kind"]
        self.activity = row["activity"]
        self.subject = row["subject"]
        self.trial = int(row["trial"])
        self.samples = int(row["samples"])

    @property
    def path(self):
        return os.path.join(self.root, self.file)

    @property
    def is_fall(self):
        return self.kind == "fall"

    def load(self):
        return read_csv(self.path)


def read_manifest(root):
    path = os.path.join(root, "manifest.csv")
    if not os.path.isfile(path):
        raise DatasetError("%s: no manifest.csv (expected a SisFall-format folder)" % root)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [k for k in MANIFEST_FIELDS if k not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError("%s: manifest.csv lacks column(s) %s" % (path, ", ".join(missing)))
        recordings = []
        for line, row in enumerate(reader, start=2):
            if row["kind"] not in ("fall", "adl"):
                raise DatasetError("%s:%d: kind must be fall or adl, not %r" % (path, line, row["kind"]))
            try:
                recordings.append(Recording(root, row))
            except ValueError as e:
                raise DatasetError("%s:%d: %s" % (path, line, e)) from None
    return recordings


def write_manifest(root, rows):
    """manifest.csv for `rows` (dicts with MANIFEST_FIELDS): a SisFall-format
    folder of one's own, e.g. a few recordings picked for a test."""
    with open(os.path.join(root, "manifest.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path):
    """Samples of one recording as a list of (x, y, z) integer milli-g tuples."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != ["ax_mg", "ay_mg", "az_mg"]:
                raise DatasetError("%s: header must be ax_mg,ay_mg,az_mg, not %r" % (path, header))
            return [(int(a), int(b), int(c)) for a, b, c in reader]
    except (OSError, EOFError, ValueError, csv.Error) as e:
        # Unreadable, truncated or not three integers per row.
        raise DatasetError("%s: %s" % (path, e)) from None
