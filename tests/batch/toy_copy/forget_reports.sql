DELETE FROM orgmig_report WHERE step = :step;
