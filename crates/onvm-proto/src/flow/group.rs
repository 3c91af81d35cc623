//! OpenFlow groups (ALL, SELECT, INDIRECT, FAST_FAILOVER): the group table.
