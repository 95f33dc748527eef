"""Face detector backends behind `dfprep.detect.get_detector`; pick one with `detect.backend`."""
