"""What the twin derives from a topology before anything starts: names and addresses, the fabric
graph, routes and the placement of reservations. Pure: no process, no kernel."""
