"""Reports: tables and plots made from scores and histories."""
