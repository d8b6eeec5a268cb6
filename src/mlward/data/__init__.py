"""Training data: readers, poisoning and backdoor detectors, snapshots and diffs."""
