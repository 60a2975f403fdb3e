package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// schema answers the collaboration's tables as analysts name them, with
// their columns' types, roles and bounds, and whether a cohort is
// current: the workbench's schema view and its reason not to run yet.
func (s *Server) schema(c echo.Context) error {
	sc, err := s.cohorts.Schema(c.Request().Context(), s.db.SQL(), collabOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sc)
}
