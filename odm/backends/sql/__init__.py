"""The SQL backend family: one compiler and one repository, a dialect per database."""
