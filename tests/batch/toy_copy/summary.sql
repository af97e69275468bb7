-- toy_copy: what a person reads at the end of a run.
SELECT (SELECT count(*) FROM toy_a) AS "rows in toy_a", (SELECT count(*) FROM toy_b) AS copied;
