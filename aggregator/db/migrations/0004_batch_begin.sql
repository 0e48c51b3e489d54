-- The first statement of a batch stored by COPY (aggregator/ingest/store/copy-batch.ts):
-- it runs in the same implicit transaction as the COPY that follows it in one
-- simple Query message. It takes the agent's row lock, refuses (with an
-- SQLSTATE the aggregator branches on) when the agent is disabled or unknown,
-- or when anything of the batch is at or below the high-water mark, and
-- otherwise advances the mark to the batch's last sequence. A refused batch
-- is stored by the general single-statement path instead, which skips
-- duplicates and quarantines row by row; a refusal writes nothing.
CREATE PROCEDURE smbfleet_batch_begin(p_agent text, p_first bigint, p_last bigint)
LANGUAGE plpgsql AS $$
DECLARE
  hw bigint;
BEGIN
  SELECT high_water_seq INTO hw FROM agents WHERE agent_id = p_agent AND NOT disabled FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'agent % is disabled or not registered', p_agent USING ERRCODE = 'SFB01';
  END IF;
  IF hw >= p_first THEN
    RAISE EXCEPTION 'batch %-% of agent % is not above its high-water mark %', p_first, p_last, p_agent, hw
      USING ERRCODE = 'SFB02';
  END IF;
  UPDATE agents SET high_water_seq = p_last, last_seen = now() WHERE agent_id = p_agent;
END
$$;

-- Results of the same batch refused by validation, kept with their bytes and
-- reason; called between smbfleet_batch_begin and the COPY, in the same
-- transaction. A procedure so that its command tag carries no row count and
-- the COPY's count is the one the aggregator checks.
CREATE PROCEDURE smbfleet_quarantine(p_site text, p_agent text, p_received_at timestamptz,
                                     p_seqs bigint[], p_reasons text[], p_raw bytea[])
LANGUAGE sql AS $$
  INSERT INTO quarantined_results (site, agent_id, seq, reason, raw, received_at)
  SELECT p_site, p_agent, u.seq, u.reason, u.raw, p_received_at
  FROM unnest(p_seqs, p_reasons, p_raw) AS u(seq, reason, raw)
$$;
