"""Schema (numbered migrations) and named SQL queries for fleetwatch; psycopg 3, no ORM."""
