-- Sites, agents and targets: who reports, and what they probe.

CREATE TABLE sites (
  site        text PRIMARY KEY,
  first_seen  timestamptz NOT NULL DEFAULT now()
);

-- One row per agent. Identity comes from the agent's certificate; an agent id
-- belongs to one site. high_water_seq is the highest sequence number whose
-- result is committed: a batch locks this row (SELECT ... FOR UPDATE), skips
-- what is at or below it and advances it in the same transaction, which is
-- what makes resends and several aggregator replicas safe.
CREATE TABLE agents (
  agent_id        text PRIMARY KEY,
  site            text NOT NULL REFERENCES sites (site),
  -- Disabled (revoked) agents are refused at connect.
  disabled        boolean NOT NULL DEFAULT false,
  high_water_seq  bigint NOT NULL DEFAULT 0 CHECK (high_water_seq >= 0),
  agent_version   text NOT NULL DEFAULT '',
  first_seen      timestamptz NOT NULL DEFAULT now(),
  last_seen       timestamptz,
  -- Server clock minus agent clock at the last Hello/Heartbeat, milliseconds.
  clock_skew_ms   bigint,
  -- Results buffered at the agent, and dropped by it ever, as it last reported.
  backlog         bigint NOT NULL DEFAULT 0,
  dropped         bigint NOT NULL DEFAULT 0,
  -- Start of the current stream; NULL when no aggregator holds one.
  connected_at    timestamptz
);
CREATE INDEX agents_site_idx ON agents (site);

-- A target's identity at a site is (address, domain, share, basedir), with
-- domain and share compared case-insensitively as SMB does (shared/result.ts
-- targetKey); name, port and labels describe it and may change.
CREATE TABLE targets (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  site        text NOT NULL REFERENCES sites (site),
  address     text NOT NULL,
  port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  domain      text NOT NULL,
  share       text NOT NULL,
  basedir     text NOT NULL,
  name        text NOT NULL,
  labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
  first_seen  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX targets_identity_idx ON targets (site, address, lower(domain), lower(share), basedir);
