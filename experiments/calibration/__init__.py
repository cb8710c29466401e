"""Calibration as inference: reported patterns as data, priors, ABC-SMC, diagnostics.

``patterns`` holds the reported facts as bands with their sources (each marked
constraining or by construction); ``priors`` the documented prior of every uncertain
parameter; ``abc`` the ABC-SMC fit (``defection calibrate``); ``diagnostics`` the
figures and checks a reviewer expects. Every claim's verdict over the posterior is in
``experiments.claims.posterior`` (claims read calibration, never the reverse).
"""
