//! Unit tests of the job.
