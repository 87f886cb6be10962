"""The application: sampling by name, the study behind the demo, reports, the explorer, figures,
benchmarks, the physics experiments and the command line. Nothing below imports it."""
