//! OpenFlow meters: token-bucket rate limiters with drop and DSCP-remark bands.
