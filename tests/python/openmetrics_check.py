"""Parses an OpenMetrics exposition from stdin with the reference parser (prometheus_client),
which rejects what the specification forbids (a missing `# EOF`, exemplars over 128
characters or on the wrong sample, counters without `_total`, ...), and prints one JSON
object: the families by type, and every exemplar with its sample. Exits 1 with the parser's
message on stderr when the exposition is invalid."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError and friends
        print(f"invalid OpenMetrics: {error}", file=sys.stderr)
        return 1
    report = {"families": {}, "exemplars": []}
    for family in families:
        report["families"][family.name] = family.type
        for sample in family.samples:
            if sample.exemplar is None:
                continue
            report["exemplars"].append(
                {
                    "sample": sample.name,
                    "labels": sample.labels,
                    "exemplar_labels": sample.exemplar.labels,
                    "value": sample.exemplar.value,
                    "timestamp": float(sample.exemplar.timestamp or 0),
                }
            )
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
