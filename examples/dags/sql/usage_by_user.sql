-- Bytes billed per user on one day (KST). The day is a query parameter, not pasted in.
SELECT user_email AS user, SUM(total_bytes_billed) AS bytes
FROM updraft_examples.jobs
WHERE DATE(creation_time, "Asia/Seoul") = @day AND job_type = "QUERY"
GROUP BY 1 ORDER BY 2 DESC
