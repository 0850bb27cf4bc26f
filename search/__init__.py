"""Search problems, objectives, constraints, algorithms, Pareto fronts and hypervolume."""
